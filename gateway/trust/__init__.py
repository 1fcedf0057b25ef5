"""Citizens' trust: proofs of ownership, one-time codes and guessing guards.

- :mod:`gateway.trust.proofs`  the levels of proof and what each allows;
- :mod:`gateway.trust.otp`     one-time codes sent to a phone (by ZNS or SMS), checked once;
- :mod:`gateway.trust.guards`  Redis counters against guessing dossier codes and phone digits;
- :mod:`gateway.trust.news`    the notices a citizen is told of (never the one-time codes).
"""
