"""The GPU path (Colab with a GPU runtime): skipped where CUDA is absent.

A model moved to the GPU must train on it, give the same loss as on the CPU,
and hand back CPU results from evaluation and plotting.
"""

import matplotlib
import pytest
import torch

import helpers

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU"
)
matplotlib.use("Agg")


@pytest.fixture(scope="module")
def split():
    return helpers.split_last_visit(helpers.simulate_cohort(n=40, seed=5))


@pytest.mark.parametrize("method", ["rk4", "dopri5"])
def test_loss_on_the_gpu_equals_the_loss_on_the_cpu(split, method):
    cohort, _ = split
    model = helpers.ODEVAE(cohort.p, cohort.q, seed=2, method=method).double()
    batch = helpers.make_batch(cohort, range(cohort.n))
    eps = torch.randn(len(batch.x), 2, generator=torch.Generator().manual_seed(1))
    on_cpu = model.loss(batch.to(dtype=torch.float64), eps=eps.double())
    model.cuda()
    on_gpu = model.loss(batch.to("cuda", torch.float64), eps=eps.double().cuda())
    assert on_gpu.device.type == "cuda"
    assert on_gpu.item() == pytest.approx(on_cpu.item(), rel=1e-9)


def test_training_evaluation_and_plots_on_the_gpu(split):
    cohort, heldout = split
    model = helpers.ODEVAE(cohort.p, cohort.q, seed=0).cuda()
    history = helpers.train(model, cohort, epochs=40, progress=False)
    assert next(model.parameters()).device.type == "cuda"
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    scores = helpers.evaluate(model, cohort, heldout)
    for name in ("heldout_mse", "locf_mse", "group_auc", "latent_r2"):
        assert isinstance(scores[name], float) and scores[name] == scores[name]
    path = model.latent_trajectory(
        cohort.xs[0][0], cohort.baseline[0], torch.linspace(0, 10, 11)
    )
    assert path.shape == (11, 2)
    helpers.plot_group(model, cohort, 1)
    figure = helpers.plot_training_panels(model, cohort, [0, 1, 2, 3], epoch=40)
    assert len(figure.axes) >= 4
