"""vLLM at any commit: derive its environment, choose an install strategy, build its image.

  mirror.py         read a commit's files, date and changes from a local git mirror (no checkout)
  facts.py          torch -> CUDA, release -> torch pin, wheel eras: the facts, in tables
  environment.py    torch / CUDA / Python / CUDA base image for one commit, with reasons
  wheels.py         per-era wheel URLs, local wheel folders, probing, METADATA version check
  native.py         does a change touch native code (shared with the agent-variant rebuild rule)
  strategy.py       own_wheel | nearest_wheel | full_build, chosen per commit and explained
  install_script.py the shell each strategy runs inside Dockerfile.gpu
  image.py          plan -> Dockerfile.gpu build args -> content-addressed image (build.py)
  tiny_model.py     a seeded tiny HF model of the catalogued architecture: vLLM runs, no download
"""
