"""The graph-aware explanation of ParticleNet (`edges`: gradient x message on the EdgeConv
edges) on a tiny random ParticleNet and ring jets: padded particles silent, each edge's
relevance equal to gradient x message computed independently, a removed particle gone from
the graph and the explanation, and IG's completeness reported on the graph network."""

import numpy as np
import pytest
import torch

import servable
from servable.bundle.bundle import save_bundle
from servable.data import particles, schema
from servable.explain import MethodNotApplicable, method_class
from servable.models.taggers import ParticleNetTagger

K = 10  # ring jets have 8-20 particles: those with at most K take padded neighbours
HBB = schema.JETCLASS_CLASSES.index("Hbb")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    names = list(particles.FEATURE_SETS["kin"])
    torch.manual_seed(3)
    tagger = ParticleNetTagger({
        "particle_features": names, "n_classes": 10,
        "class_names": list(schema.JETCLASS_CLASSES),
        "hyperparameters": {"k": K, "channels": [16, 32], "layers_per_block": 2,
                            "fc_width": 32},
        "preprocessing": {"particles": particles.preprocessing(names)}})
    return servable.load(save_bundle(tagger, tmp_path_factory.mktemp("pn") / "tiny",
                                     name="tiny-particlenet"))


@pytest.fixture(scope="module")
def jets(tmp_path_factory):
    from tests.ring_jets import write_ring_root

    path = write_ring_root(tmp_path_factory.mktemp("rings") / "rings.root", 3, seed=4)
    return servable.read_jets(path)


@pytest.fixture(scope="module")
def edges(tiny, jets):
    return tiny.explain(jets, method="edges", target=HBB)


def test_padded_particles_get_exactly_zero_relevance(tiny, jets, edges):
    filled = (tiny.tagger.inputs(jets)["particles"] != 0).any(1)
    rel = edges.extras["slot_relevance"]
    assert (~filled).any() and np.all(rel[~filled] == 0)
    assert np.all(edges.extras["received_relevance"][~filled] == 0)
    assert np.count_nonzero(rel[filled]) == filled.sum()
    # jets with at most K particles take padded neighbours: their edges' relevance is kept
    # apart, per jet, and only such jets have any
    short = filled.sum(1) <= K
    assert short.any() and (~short).any()
    assert np.all(edges.extras["padding_edges"][~short] == 0)
    assert np.all(edges.extras["padding_edges"][short] != 0)
    first = edges.extras["edges"][0]["neighbour_slot"]
    padded_neighbour = (first == -1) & filled[:, : first.shape[1], None]  # of real particles
    assert np.all(padded_neighbour.any((1, 2)) == short)


def test_edge_relevance_is_gradient_times_message(tiny, jets, edges):
    """Independently of PyG's edge mask: the messages captured by a forward hook on
    `message`, and the gradient of the logit with respect to them."""
    net = tiny.tagger.net
    x = torch.from_numpy(tiny.tagger.inputs(jets)["particles"])
    messages = []
    originals = []
    for block in net.core.edge_convs:
        originals.append(block.message)

        def keep(x_i, x_j, _message=block.message):
            m = _message(x_i, x_j)
            messages.append(m)
            return m
        block.message = keep
    try:
        logit = net(x)[:, HBB].sum()
        grads = torch.autograd.grad(logit, messages)
    finally:
        for block in net.core.edge_convs:
            del block.message
    filled = (x.numpy() != 0).any(1)
    jet, slot = np.nonzero(filled)
    for b, (m, g) in enumerate(zip(messages, grads, strict=True)):
        expected = (m * g).sum(1).detach().numpy().reshape(-1, K)
        got = edges.extras["edges"][b]["relevance"][jet, slot]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(edges.output, net(x)[:, HBB].detach().numpy(), atol=1e-6)


def test_removing_a_particle_moves_the_later_ones_up(jets):
    from servable.study.gnn_transfer import without_particles

    before = jets.group("particles").values
    after = without_particles(jets, np.array([2] * len(jets))).group("particles").values
    np.testing.assert_array_equal(after[:, :, :2], before[:, :, :2])
    np.testing.assert_array_equal(after[:, :, 2:-1], before[:, :, 3:])
    assert np.all(after[:, :, -1] == 0)
    assert np.all((after != 0).any(1).sum(1) == (before != 0).any(1).sum(1) - 1)


def test_removing_the_most_edge_relevant_particle_changes_the_explanation(tiny, jets, edges):
    from servable.study.gnn_transfer import without_particles

    filled = (tiny.tagger.inputs(jets)["particles"] != 0).any(1)
    j = int(np.argmax(filled.sum(1)))  # the fullest jet: no padded neighbours
    n = int(filled[j].sum())
    top = int(np.argmax(np.abs(edges.extras["slot_relevance"][j])))
    # the removed particle was a neighbour of others in the first block's graph
    first = edges.extras["edges"][0]["neighbour_slot"][j, :n]
    receivers = np.flatnonzero((first == top).any(1))
    assert receivers.size
    after = tiny.explain(without_particles(jets[j:j + 1], np.array([top])), method="edges",
                         target=HBB)
    moved = np.array([s - (s > top) for s in range(n) if s != top])  # old slot -> new slot
    kept = np.array([s for s in range(n) if s != top])
    # nobody has it as a neighbour any more, and its neighbours' relevance changed
    assert np.all(after.extras["edges"][0]["neighbour_slot"][0, : n - 1] < n - 1)
    before_rel = edges.extras["received_relevance"][j, kept]
    after_rel = after.extras["received_relevance"][0, moved]
    changed = ~np.isclose(before_rel, after_rel, rtol=1e-4, atol=1e-9)
    assert changed[np.isin(kept, receivers)].all()
    assert after.output[0] != pytest.approx(edges.output[j], abs=1e-7)


def test_integrated_gradients_reports_completeness_on_the_graph_network(tiny, jets):
    e = tiny.explain(jets, method="ig", target=HBB, n_steps=16)
    total = e.particles.reshape(len(jets), -1).sum(1)
    gap = e.output - e.base_value
    expected = np.abs(total - gap) / np.maximum(np.abs(gap), 1e-12)
    np.testing.assert_allclose(e.extras["completeness_error"], expected, rtol=1e-3,
                               atol=1e-6)
    assert np.isfinite(e.extras["completeness_error_median"])


def test_edges_applies_to_particlenet_only(random_bundle):
    assert method_class("edges").applies_to == ("particlenet",)
    with pytest.raises(MethodNotApplicable, match="edges.*mlp.*particlenet"):
        method_class("edges")(servable.load(random_bundle))


def test_a_frozen_graph_changes_nothing_where_the_path_keeps_the_graph(tiny, jets):
    """The random tiny network has no biases that matter (batch norm at its initial
    statistics), so alpha * x has the same kNN graph all along IG's path; freezing the graph
    at the input's (tiled over Captum's path points) must then give the same IG."""
    from servable.study import gnn_transfer

    few = jets[:6]
    changes = gnn_transfer.graph_changes(tiny, few, 8)
    assert all(c["steps_with_change"] == 0 for c in changes.values())
    rebuilt = gnn_transfer.completeness(tiny, few, HBB, 8)
    frozen = gnn_transfer.completeness(tiny, few, HBB, 8, frozen=True)
    np.testing.assert_allclose(frozen["per_jet"], rebuilt["per_jet"], rtol=1e-4, atol=1e-7)
