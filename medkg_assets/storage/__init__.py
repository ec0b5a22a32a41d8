"""Artefact storage: atomic writes and the on-disk layout under MEDKG_DATA_DIR."""
