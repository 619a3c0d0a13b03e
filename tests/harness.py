"""Test helpers shared by the end-to-end tests."""
from sandbox.stack import LocalDesk as Desk, wait_for  # noqa: F401
