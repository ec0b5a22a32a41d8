"""Module-level job factory so `reconstructable` can rebuild the job in executor subprocesses."""


def index_job():
    from medkg_assets.definitions import defs

    return defs.resolve_job_def("index_job")
