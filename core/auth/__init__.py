"""Passwords, bearer tokens and role permissions."""
