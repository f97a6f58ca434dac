"""Classification heads, losses and the core classifier: the DeepShadows parameter count, losses vs hand values."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from astrodet.models.classifier import (
    ImageClassifier,
    build_deepshadows_classifier,
    build_head,
    count_trainable,
    keras_l2_param_groups,
    num_outputs_for,
)
from astrodet.models.deepshadows import DeepShadowsTrunk
from astrodet.models.heads import (
    DenseHead,
    PooledLinearHead,
    class_probabilities,
    cumulative_fractions,
    dirichlet_concentrations,
    dirichlet_multinomial_nll,
    question_probabilities,
    soft_question_ce,
)
from astrodet.models.schemas import load_question_schema


def test_deepshadows_classifier_has_the_papers_parameter_count() -> None:
    model = build_deepshadows_classifier()
    assert count_trainable(model) == 4_220_161  # Tanoglidis et al. 2021
    assert count_trainable(model.head) == 4096 * 1024 + 1024 + 1024 + 1
    model.eval()
    logits = model(torch.rand(3, 3, 64, 64))
    assert logits.shape == (3, 1)
    probs = model.predict(logits)
    assert probs.shape == (3, 2) and torch.allclose(probs.sum(1), torch.ones(3))


def test_dense_head_refuses_another_input_size() -> None:
    model = build_deepshadows_classifier()
    with pytest.raises(ValueError, match="4096 flattened features"):
        model(torch.rand(1, 3, 32, 32))


def test_pooled_head_takes_any_size() -> None:
    head = PooledLinearHead(64, 6)
    assert head(torch.rand(2, 64, 3, 3)).shape == head(torch.rand(2, 64, 9, 5)).shape == (2, 6)
    assert head(torch.rand(2, 64)).shape == (2, 6)


def test_build_head_kinds_and_output_counts() -> None:
    assert isinstance(build_head("dense", in_channels=8, num_outputs=1, feature_size=(2, 2)), DenseHead)
    assert isinstance(build_head("linear", in_channels=8, num_outputs=3), PooledLinearHead)
    with pytest.raises(ValueError, match="feature_size"):
        build_head("dense", in_channels=8, num_outputs=1)
    with pytest.raises(ValueError, match="head must be one of"):
        build_head("mlp", in_channels=8, num_outputs=1)
    assert num_outputs_for("bce", 2) == 1
    assert num_outputs_for("ce", 6) == 6
    assert num_outputs_for("soft_ce", 6, 37) == 37
    with pytest.raises(ValueError, match="exactly 2 classes"):
        num_outputs_for("bce", 3)
    with pytest.raises(ValueError, match="question schema"):
        num_outputs_for("dirichlet", 2)


def test_binary_loss_is_bce_on_the_logit_and_class_weights_weigh_positives() -> None:
    trunk = DeepShadowsTrunk(out_indices=(2,))
    head = build_head("dense", in_channels=64, num_outputs=1, feature_size=(1, 1))
    logits = torch.tensor([[0.3], [-1.2]])
    labels = torch.tensor([1, 0])
    plain = ImageClassifier(trunk, head, loss="bce").loss(logits, labels)
    expected = -(math.log(1 / (1 + math.exp(-0.3))) + math.log(1 - 1 / (1 + math.exp(1.2)))) / 2
    assert plain.item() == pytest.approx(expected, rel=1e-6)
    weighted = ImageClassifier(trunk, head, loss="bce", class_weights=[1.0, 3.0]).loss(logits, labels)
    expected_w = -(3 * math.log(1 / (1 + math.exp(-0.3))) + math.log(1 - 1 / (1 + math.exp(1.2)))) / 2
    assert weighted.item() == pytest.approx(expected_w, rel=1e-6)


def test_class_probabilities() -> None:
    p = class_probabilities(torch.tensor([[0.0], [2.0]]), "bce")
    assert torch.allclose(p[0], torch.tensor([0.5, 0.5]))
    assert p[1, 1].item() == pytest.approx(1 / (1 + math.exp(-2)))
    q = class_probabilities(torch.tensor([[0.0, math.log(3.0)]]), "ce")
    assert torch.allclose(q, torch.tensor([[0.25, 0.75]]))


def test_soft_question_ce_matches_the_hand_value() -> None:
    slices = [(0, 2), (2, 5)]
    logits = torch.tensor([[0.0, math.log(3.0), 0.0, 0.0, 0.0]])
    fractions = torch.tensor([[0.2, 0.8, 0.8, 0.0, 0.0]])  # question 2 reached by 80 %, all answering the first
    expected = -(0.2 * math.log(0.25) + 0.8 * math.log(0.75)) - 0.8 * math.log(1 / 3)
    assert soft_question_ce(logits, fractions, slices).item() == pytest.approx(expected, rel=1e-6)


def _dm_log_p(k: list[float], alpha: list[float]) -> float:
    n, a = sum(k), sum(alpha)
    value = math.lgamma(n + 1) - sum(math.lgamma(x + 1) for x in k) + math.lgamma(a) - math.lgamma(n + a)
    return value + sum(math.lgamma(x + al) - math.lgamma(al) for x, al in zip(k, alpha, strict=True))


def test_dirichlet_multinomial_nll_matches_the_formula_and_ignores_unanswered_questions() -> None:
    slices = [(0, 3), (3, 5)]
    logits = torch.tensor([[0.5, -1.0, 2.0, 0.3, 0.1]], dtype=torch.float64)  # float64: lgamma(40) cancels
    counts = torch.tensor([[10.0, 3.0, 27.0, 0.0, 0.0]])  # question 2 never asked
    alpha = dirichlet_concentrations(logits)[0].tolist()
    expected = -_dm_log_p([10, 3, 27], alpha[:3])
    assert dirichlet_multinomial_nll(logits, counts, slices).item() == pytest.approx(expected, rel=1e-9)
    # concentrations bounded as Zoobot's: (1, 100)
    c = dirichlet_concentrations(torch.tensor([-50.0, 50.0]))
    assert c[0].item() == pytest.approx(1.0) and c[1].item() == pytest.approx(100.0)
    # a uniform Dirichlet(1, 1) gives one vote of two answers probability 1/2
    nll = dirichlet_multinomial_nll(torch.tensor([[-50.0, -50.0]]), torch.tensor([[1.0, 0.0]]), [(0, 2)])
    assert nll.item() == pytest.approx(math.log(2), rel=1e-5)


def test_question_probabilities_and_cumulative_fractions_follow_the_tree() -> None:
    schema = load_question_schema()
    assert len(schema.columns) == 37 and len(schema.questions) == 11
    logits = torch.randn(4, 37)
    probs = question_probabilities(logits, schema.slices)
    for start, stop in schema.slices:
        assert torch.allclose(probs[:, start:stop].sum(1), torch.ones(4), atol=1e-6)
    cum = cumulative_fractions(probs, schema.slices, schema.parents)
    # Q2 (edge-on) is reached through Class1.2: cumulative = per-question x P(Class1.2)
    col = {c: i for i, c in enumerate(schema.columns)}
    assert torch.allclose(cum[:, col["Class2.1"]], probs[:, col["Class2.1"]] * probs[:, col["Class1.2"]])
    # Q10 via Class4.1, which is itself reached via Class2.2 via Class1.2
    chain = (
        probs[:, col["Class10.1"]] * probs[:, col["Class4.1"]] * probs[:, col["Class2.2"]] * probs[:, col["Class1.2"]]
    )
    assert torch.allclose(cum[:, col["Class10.1"]], chain, atol=1e-6)
    # Q1 and Q6 are asked of everyone
    assert torch.allclose(cum[:, col["Class6.1"]], probs[:, col["Class6.1"]])
    dm = question_probabilities(logits, schema.slices, loss="dirichlet")
    assert torch.allclose(dm[:, 0:3].sum(1), torch.ones(4), atol=1e-6)


def test_vote_classifier_predicts_cumulative_fractions() -> None:
    schema = load_question_schema()
    trunk = DeepShadowsTrunk(out_indices=(2,))
    head = build_head("linear", in_channels=64, num_outputs=37)
    model = ImageClassifier(
        trunk, head, loss="soft_ce", question_slices=schema.slices, question_parents=schema.parents
    ).eval()
    logits = model(torch.rand(2, 3, 32, 32))
    out = model.predict(logits)
    assert out.shape == (2, 37)
    assert torch.allclose(out[:, 0:3].sum(1), torch.ones(2), atol=1e-6)
    assert model.loss(logits, torch.rand(2, 37)).item() > 0
    with pytest.raises(ValueError, match="question_slices"):
        ImageClassifier(trunk, head, loss="dirichlet")


def test_classifier_reads_a_named_feature_of_a_dict_backbone() -> None:
    class DictBackbone(nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"stage1": x[:, :1], "stage2": x * 2}

    model = ImageClassifier(DictBackbone(), PooledLinearHead(3, 2), feature="stage2")
    assert model.features(torch.ones(1, 3, 4, 4)).mean().item() == 2.0
    model_last = ImageClassifier(DictBackbone(), PooledLinearHead(3, 2), feature=-1)
    assert model_last.features(torch.ones(1, 3, 4, 4)).mean().item() == 2.0


def test_keras_l2_groups() -> None:
    model = build_deepshadows_classifier()
    groups = keras_l2_param_groups(model, 0.13, 0.12, skip=[model.head.out])
    by_decay = {round(g["weight_decay"], 6): g["params"] for g in groups}
    conv = {id(m.weight) for m in model.modules() if isinstance(m, nn.Conv2d)}
    assert {id(p) for p in by_decay[0.26]} == conv
    assert [id(p) for p in by_decay[0.24]] == [id(model.head.hidden.weight)]
    rest = {id(p) for p in by_decay[0.0]}
    assert id(model.head.out.weight) in rest and id(model.head.hidden.bias) in rest
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
