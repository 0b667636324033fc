"""Canonical shop input: the file layout, reading, and validation before anything is written."""

from graphrec.ingest.layout import FILES, FileSpec
from graphrec.ingest.read import InputFileError, Table
from graphrec.ingest.validate import FileCount, Graph, ValidationReport, validate_directory

__all__ = ["FILES", "FileCount", "FileSpec", "Graph", "InputFileError", "Table", "ValidationReport",
           "validate_directory"]
