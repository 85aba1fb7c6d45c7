"""Test doubles that stand in for services outside this machine.

Only the model service is faked, and at the HTTP boundary: see ``anthropic_server``.
"""
