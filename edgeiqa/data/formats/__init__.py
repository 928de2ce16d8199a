"""Readers for each dataset's official metadata format; registered by name in :mod:`edgeiqa.data.loaders`."""
