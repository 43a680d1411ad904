"""TensorFlow and Keras as skreg uses them: the one quiet import
(:mod:`.tensorflow`), Keras objects of skreg's own (fused optimizers,
losses), and the only code that touches private TensorFlow or Keras API
(each use degrades to a slower path with the same results where a release
moved it)."""
