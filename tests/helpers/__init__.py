"""Helpers the test files share, imported as ``helpers.<module>`` (``tests/`` is on pytest's ``pythonpath``).

No test file imports another: what two files need lives here (plain functions) or in ``conftest.py`` (fixtures).
"""
