"""Server-rendered web pages: the approval inbox, deal timelines, the stall board, links."""
