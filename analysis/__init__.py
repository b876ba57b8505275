"""Pure science on in-memory data: normalisation, dose-response fits, plate QC, reports."""
