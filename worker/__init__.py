"""The processes you deploy: worker, API and webhook ingress, CLI and the dev stack."""
