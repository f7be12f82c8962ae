"""Probes: small studies of one collapse phenomenon each (intention, ambiguity, tokenizer,
passkey, drift), each with its own command and a quick section in ``scan``."""
