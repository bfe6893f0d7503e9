"""Sign-In with Ethereum (EIP-4361) for BCFL: wallet sign-in for people, API tokens for the CLI.

See ``provider.py`` for how this plugs into django-allauth and why it is not a socialaccount provider.
"""
