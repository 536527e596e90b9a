"""Reports: contact-center figures from the facts, scheduled runs (11:30, 16:30, 08:10, shift end),
CSV (UTF-8 BOM) and streamed XLSX exports."""
