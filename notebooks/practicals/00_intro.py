# %% [markdown]
# # Differentiable programming for flexible modelling with small data
#
# *Practicals of the NORBIS workshop (Rosendal, 2022), Python edition.*
#
# Suppose you can write your statistical model as a program: a few lines of
# algebra, a loop, a differential equation, a small neural network, all mixed.
# **Differentiable programming** means that the computer can then give you the
# derivative of the program's output (a loss) with respect to every number in
# it. With those derivatives, gradient descent fits all parameters at once,
# the knowledge-driven ones (rates of an ODE) and the data-driven ones
# (weights of a network) alike.
#
# This is attractive for *small* data: instead of a huge black-box model we
# can put what we know (for example, that a health status changes smoothly
# over time) into the program and let the data fill in only the rest.
#
# **What you will do**
#
# * **Part I, automatic differentiation in action.** Derivatives of small
#   functions, of loops and recursions, a check against finite differences,
#   and fitting the parameters of an ODE by gradient descent.
# * **Part II, neural networks and differential equations together.** A
#   variational autoencoder (VAE) for patient visits, then an ODE-VAE whose
#   latent health status follows an ODE with patient-specific parameters,
#   trained on a simulated registry with irregular visits, and judged with
#   numbers against simple baselines.
# * **Exercises** to change the settings and see what happens, and a
#   **bonus**: a small classifier trained with the same machinery.
#
# Run the cells from top to bottom. Everything runs on an ordinary CPU; the
# whole notebook takes a minute or two. The code you are meant to read is in
# this notebook; plumbing (data simulation, batching, plotting, evaluation)
# lives in the small `helpers` package next to it.

# %% [setup]

# %% [markdown]
# ### Before we start
#
# Each part below begins with its own imports and its own seed, so after the
# set-up and the next cell you can jump straight to any part. Seeds are passed
# explicitly to every random step (random starting values, simulated data,
# network initialisation, training noise), so re-running a cell repeats its
# result.
#
# The models in this notebook are tiny. On a CPU, one thread runs them faster
# than several, which would spend more time coordinating than computing:

# %%
import torch

torch.set_num_threads(1)
print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread")
