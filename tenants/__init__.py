"""Tenant lifecycle: manifest schema, onboarding, data export and offboarding."""
