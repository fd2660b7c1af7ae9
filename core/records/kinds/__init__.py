"""Core's own plugins: registered through the same hooks as any industry plugin."""
