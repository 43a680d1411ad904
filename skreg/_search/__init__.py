"""The CV estimators' machinery: the two ways of running a search
(:mod:`.runs`), its groups of towers (:mod:`.groups`), scores, results and
the successive-halving schedule as data (:mod:`.schedule`). The public CV
estimators are in :mod:`skreg.search`."""
