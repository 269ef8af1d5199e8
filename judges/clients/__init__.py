"""Calling LLM judges (pure Python, no Django).

config (JudgeConfig, version hash), openai_compat (async/sync calls on the openai SDK),
ratelimit, retry, errors, judge (render -> call -> parse -> slots), and the fake
OpenAI-compatible server: simulation, scenarios, fake_server.
"""
