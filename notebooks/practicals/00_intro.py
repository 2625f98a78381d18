# %% [markdown]
# # Differentiable programming for flexible modelling with small data
#
# *Practicals of the NORBIS workshop (Rosendal, 2022), Python edition.*
#
# Write your statistical model as a program: some algebra, a loop, a
# differential equation, a small neural network, all mixed. **Differentiable
# programming** means the computer then gives you the derivative of the
# program's output (a loss) with respect to every number in it, and gradient
# descent fits all parameters at once: the rates of an ODE and the weights of
# a network alike. With *small* data this lets us put what we know into the
# program and let the data fill in only the rest.
#
# * **Part I**: automatic differentiation of functions, loops and an ODE
#   solver, and fitting an ODE by gradient descent.
# * **Part II**: a variational autoencoder for patient visits, then an
#   ODE-VAE whose latent health status follows an ODE with patient-specific
#   parameters, judged against a simple baseline.
# * **Exercises**, a **bonus** classifier, and an optional **appendix** on
#   how the training is made fast.
#
# Cells marked **Your turn** are yours to complete; the next cell says
# whether your answer is right, and a solution is hidden below it. Run the
# cells from top to bottom, on any CPU. Plumbing (simulation, plotting,
# evaluation) lives in the `helpers` package next to this notebook.

# %% [setup]

# %% [markdown]
# Every random step gets its seed explicitly, so re-running a cell repeats
# its result. The models are tiny: one CPU thread is faster than several.

# %%
import torch

torch.set_num_threads(1)
print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread")
