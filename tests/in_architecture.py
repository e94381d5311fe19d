"""The published IN's parameter count, written from its architecture (not from the model)."""


def in_parameters(P: int, S: int, hidden: int, De: int, Do: int, classes: int = 2) -> int:
    """Trainable parameters of the published IN (Moreno et al.; FAIR paper Table 3): three
    3-layer MLPs, f_R on track pairs (2P inputs), f_R^pv on track-SV pairs (P + S), f_O on
    nodes (P + 2 De), each hidden -> hidden -> out, then one linear layer Do -> classes;
    every layer has weights and biases."""
    def mlp(n_in, n_out):
        return (n_in * hidden + hidden) + (hidden * hidden + hidden) + (hidden * n_out + n_out)

    return mlp(2 * P, De) + mlp(P + S, De) + mlp(P + 2 * De, Do) + Do * classes + classes
