"""Calling LLM judges (pure Python, no Django), on top of the :mod:`llm` transport.

config (JudgeConfig: a model config with mode and template, and its version hash), judge
(render -> call -> parse -> slots), and the fake OpenAI-compatible server that simulates
candidates and biased judges: simulation (the simulator and its data classes), scenarios
(the built-in scenario table and ``load_scenario``), fake_server.
"""
