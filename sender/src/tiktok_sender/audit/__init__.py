"""What the sender tells about past deliveries: the audit models read (`read`, `rollup`), as text
and JSON for `sender status` (`text`), and as the HTML report of `sender report` (`report`, with
`charts`, `svg`, `tables` and `templates/`). Reads the warehouse; never writes it."""
