"""Ingestion: reading report files of every common format into the one case-result model."""
