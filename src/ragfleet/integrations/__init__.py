"""Adapters for other frameworks; each module imports its framework, so import the one
you need: ``ragfleet.integrations.langchain`` or ``ragfleet.integrations.llamaindex``."""
