"""Test doubles that ship with isobench, so tests, demos and batch CI can drive real agents.

The only one so far is a scripted OpenAI-compatible server (`scripted_llm`): a fake of a service
that cannot be reached here, built to behave like the real one, errors included.
"""
