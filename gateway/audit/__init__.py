"""The accountability loop: from stored timelines to a ledger an auditor can act on.

A dossier's events are judged (the lateness verdict) and checked against the rules
(violations); the verdicts feed the monthly statistics, the findings the append-only
violations ledger, each with a suggested sanction from the ladder. The audit sweep keeps
the ledger current as events arrive; ``tthc audit rebuild`` recomputes it from history.
"""
