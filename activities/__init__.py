"""Activities: the effects of the workflows (CRM writes, notifications), each idempotent."""
