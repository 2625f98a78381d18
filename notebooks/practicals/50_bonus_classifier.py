# %% [markdown]
# # Bonus: a small classifier, trained with the same machinery
#
# Autodiff and Adam are not only for ODEs. Here they train an ordinary
# supervised neural network. The task is deliberately simple: each sample is
# a noisy curve, and the network must tell which of the two components of the
# Part I solution it came from,
#
# $$u_1(t) = 2e^{-t} \quad\text{(label 0)} \qquad\text{or}\qquad
#   u_2(t) = 1.5e^{t} - 0.5e^{-t} \quad\text{(label 1)},$$
#
# observed every 0.01 on $[0, 1]$ (101 values) with standard normal noise
# added to every value.
#
# The original notebook built these curves on a time span variable that an
# earlier section had silently overwritten. Here the classifier defines its
# own time grid, and gets the clean curves from the closed-form solution in
# `helpers.true_states` with the Part I matrix.

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

import helpers

SEED = 2022  # the bonus's seed: data, initial weights, batch order

classifier_times = torch.linspace(0.0, 1.0, 101)  # every 0.01 on [0, 1]
part1_matrix = ((-1.0, 0.0), (0.5, 1.0))
clean_curves = helpers.true_states(part1_matrix, (2.0, 1.0), classifier_times).float()

generator = torch.Generator().manual_seed(SEED)
n_samples = 100
labels = torch.arange(n_samples) % 2  # 50 of each component ...
labels = labels[torch.randperm(n_samples, generator=generator)]  # ... in random order
inputs = clean_curves[:, labels].T  # (100, 101): row k is component labels[k]
inputs = inputs + torch.randn(inputs.shape, generator=generator)
train_x, test_x = inputs[:80], inputs[80:]  # 80/20 split
train_y, test_y = labels[:80].float(), labels[80:].float()
print(f"training: {len(train_x)} curves ({int(train_y.sum())} of label 1), "
      f"test: {len(test_x)} curves ({int(test_y.sum())} of label 1)")

# %%
figure, ax = plt.subplots(figsize=(6, 3.5))
for label, colour in zip((0, 1), helpers.COLORS):
    first = int(torch.nonzero(labels == label)[0])
    ax.plot(classifier_times, inputs[first], ".", color=colour, ms=3,
            label=f"a noisy sample with label {label}")
    ax.plot(classifier_times, clean_curves[:, label], "-", color=colour,
            label=f"$u_{label + 1}(t)$ without noise")
ax.set(xlabel="time $t$", ylabel="value", title="Two samples and their clean curves")
ax.legend(fontsize="small")
plt.show()

# %% [markdown]
# The network: 101 inputs, a hidden layer of 10 units with ReLU, and one output,
# the log-odds of label 1. The loss is the logistic (binary cross-entropy) loss,
# minimised with Adam (learning rate 0.001) for 100 epochs of mini-batches of
# 10 curves, reshuffled every epoch. After each epoch we record the loss on the
# training and on the test curves.

# %%
# nn.Linear draws its starting weights from torch's global generator: seed it
# inside fork_rng, so that this cell repeats its result and leaves the global
# random state of the rest of the notebook as it was
with torch.random.fork_rng():
    torch.manual_seed(SEED)
    classifier = nn.Sequential(nn.Linear(101, 10), nn.ReLU(), nn.Linear(10, 1))
logistic_loss = nn.BCEWithLogitsLoss()
optimiser = torch.optim.Adam(classifier.parameters(), lr=1e-3)
batch_order = torch.Generator().manual_seed(SEED)

losses = {"training": [], "test": []}
for epoch in range(100):
    order = torch.randperm(len(train_x), generator=batch_order)
    for first in range(0, len(order), 10):
        batch = order[first:first + 10]
        loss = logistic_loss(classifier(train_x[batch]).squeeze(-1), train_y[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        for name, x, y in (("training", train_x, train_y), ("test", test_x, test_y)):
            losses[name].append(logistic_loss(classifier(x).squeeze(-1), y).item())

with torch.no_grad():
    predicted = (classifier(test_x).squeeze(-1) > 0).float()
accuracy = (predicted == test_y).float().mean().item()
print(f"final loss: training {losses['training'][-1]:.4f}, "
      f"test {losses['test'][-1]:.4f}; test accuracy {accuracy:.0%}")

# %%
figure, ax = plt.subplots(figsize=(6, 3.5))
for name, values in losses.items():
    ax.plot(range(1, 101), values, label=f"{name} curves")
ax.set(xlabel="epoch", ylabel="logistic loss", yscale="log",
       title="Classifier: loss after each epoch")
ax.legend()
plt.show()

# %% [markdown]
# Noise with standard deviation 1 is large next to each value, yet 101 values
# per curve carry plenty of evidence: the two mean curves are about 15.6
# noise standard deviations apart (the length of their difference, the
# Mahalanobis distance), so even a linear rule would separate them almost
# without error. The task shows the machinery, not what a network adds.
# Try a harder version: fewer time points, more noise, or two curves that
# are closer together.
