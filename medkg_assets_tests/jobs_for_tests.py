"""Module-level job factory so `reconstructable` can rebuild the job in executor subprocesses."""


def index_job():
    from medkg_assets_tests.pipeline import definitions

    return definitions().resolve_job_def("index_job")
