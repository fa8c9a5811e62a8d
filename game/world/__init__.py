"""The game world as data and rules, with no I/O of its own: the content catalog (worlds, routes,
cast) and the story state with the rules that merge a turn's update into it.

Pure like `game.cards`: every other layer may read it, it imports nothing of the game's.
"""
