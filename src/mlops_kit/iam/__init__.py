"""IAM as the kit reads it: a policy evaluator, the table of what each AWS call needs, and the access
ledger that checks every call the kit makes against the policies the Pulumi program generates."""
