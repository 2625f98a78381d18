# %% [markdown]
# # Differentiable programming for flexible modelling with small data
#
# *Practicals of the NORBIS workshop (Rosendal, 2022), Python edition.*
#
# Write your statistical model as a program: algebra, loops, a differential
# equation, a small neural network, all mixed. **Differentiable
# programming** gives the derivative of the program's output (a loss) with
# respect to every number in it, so gradient descent fits all parameters at
# once, ODE rates and network weights alike. With *small* data we put what
# we know into the program and let the data fill in the rest.
#
# * **Part I**: automatic differentiation, and fitting an ODE by gradient
#   descent.
# * **Part II**: a variational autoencoder for patient visits, then an
#   ODE-VAE whose latent health status follows an ODE with patient-specific
#   parameters.
# * **Exercises**, a **bonus** classifier, and an **appendix** on training.
#
# Complete the cells marked **Your turn**; the next cell checks your answer
# and a solution is hidden below it. Run the cells top to bottom, on any
# CPU. Plumbing lives in the `helpers` package next to this notebook.

# %% [setup]

# %% [markdown]
# Every random step has an explicit seed, so re-running a cell repeats its
# result. The models are tiny: one CPU thread is fastest.

# %%
import torch

torch.set_num_threads(1)
print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread")
