"""The Delphes CMS-card track model of the JetClass-like generator: helix impact parameters,
the card's resolution tables, the tracker volume, neutral candidates."""

import numpy as np

from servable.data import delphes_tracks
from servable.data.particleflow import ParticleFlowModel, reconstruct

# pT (GeV) of a unit charge on a 1 m circle in 3.8 T: pT = 0.299792458 B r
PT_1M = 0.299792458 * 3.8


def test_primary_tracks_have_zero_impact_parameters():
    px, py, pz = np.array([3.0, -0.4, 200.0]), np.array([1.0, 0.7, -5.0]), np.array([2, -1, 80.])
    e = np.sqrt(px**2 + py**2 + pz**2 + 0.14**2)
    d0, dz, phi = delphes_tracks.helix_parameters(px, py, pz, e, np.array([1, -1, 1]),
                                                  *np.zeros((3, 3)))
    np.testing.assert_allclose(d0, 0, atol=1e-9)  # mm; round-off of a 175 m radius
    np.testing.assert_allclose(dz, 0, atol=1e-9)
    np.testing.assert_allclose(phi, np.arctan2(py, px), atol=1e-12)


def test_stiff_displaced_tracks_follow_the_straight_line():
    """A 500 GeV track from (1, 2, 5) mm: the helix is a line over millimetres, d0 = (x py -
    y px) / pT = -2 mm for a track along x, and z at the point of closest approach is z0."""
    d0, dz, _ = delphes_tracks.helix_parameters(
        np.array([500.0]), np.array([0.0]), np.array([0.0]), np.array([500.0]), np.array([-1]),
        np.array([1.0]), np.array([2.0]), np.array([5.0]))
    assert abs(d0[0] + 2.0) < 1e-5 and abs(dz[0] - 5.0) < 1e-5


def test_soft_tracks_curve_back_towards_the_beam_line():
    """A track produced at (0, 100 mm) moving along +y: a straight line passes the beam line
    at distance 0, the helix of radius r = 1 m (centre (r, 0.1 m)) at sqrt(r^2 + 0.01) - r."""
    d0, dz, phi = delphes_tracks.helix_parameters(
        np.array([0.0]), np.array([PT_1M]), np.array([0.5]), np.array([np.hypot(PT_1M, 0.5)]),
        np.array([1]), np.array([0.0]), np.array([100.0]), np.array([7.0]))
    assert abs(abs(d0[0]) - (np.sqrt(1 + 0.01) - 1) * 1e3) < 1e-6
    assert dz[0] < 7.0  # the point of closest approach lies behind the production point
    assert phi[0] != np.pi / 2


def test_resolution_tables_of_the_card():
    """Values of the card's D0/DZResolutionFormula (mm), read off delphes_card.tcl."""
    pt = np.array([0.15, 0.2, 1.0, 200.0, 200.0, 5.0, 3.0])
    eta = np.array([0.3, 0.3, -0.5, 0.5, -2.0, 1.2, 2.7])
    d0err, dzerr = delphes_tracks.ip_resolution(pt, eta)
    np.testing.assert_allclose(d0err, [0, 0.3543, 0.0753, 0.0110, 0.0137, 0.0313, 0])
    np.testing.assert_allclose(dzerr, [0, 0.3693, 0.1113, 0.0318, 0.0850, 0.0707, 0])


def _table(rows):
    keys = ("id", "status", "px", "py", "pz", "e", "vx", "vy", "vz", "charge", "event")
    cols = {k: np.array([r[i] for r in rows], float) for i, k in enumerate(keys)}
    for k in ("id", "status", "event"):
        cols[k] = cols[k].astype(np.int64)
    return cols


def test_reconstruction_drops_particles_made_outside_the_tracker_and_zeroes_neutrals():
    perfect = ((1.0, 1.0, 1.0), (1.0, 1.0, 1.0))
    model = ParticleFlowModel(hadron_efficiency=perfect)
    t = _table([
        (211, 1, 20.0, 0.0, 5.0, 20.63, 0.0, 0.0, 0.0, 1, 0),  # primary pion
        (211, 1, 0.0, 20.0, 5.0, 20.63, 0.0, 1400.0, 0.0, 1, 0),  # made at R = 1.4 m
        (2112, 1, 0.0, -30.0, 0.0, 30.01, 0.0, 0.0, 0.0, 0, 0),  # neutron -> HCAL
        (22, 1, -25.0, 0.0, 0.0, 25.0, 0.0, 0.0, 3100.0, 0, 0),  # made at z = 3.1 m
    ])
    reco = reconstruct(t, model, np.random.default_rng(1))
    gen = reco["gen"].tolist()
    assert 0 in gen and 1 not in gen and 3 not in gen and 2 in gen
    neutral = reco["charge"] == 0
    for key in ("d0", "d0err", "dz", "dzerr"):
        assert np.all(reco[key][neutral] == 0), key
    track = reco["gen"] == 0
    # true momentum (TrackSmearing's zero P, CtgTheta, Phi resolutions), card errors at 20 GeV
    np.testing.assert_allclose(reco["px"][track], 20.0)
    assert reco["d0err"][track][0] in (0.0143, 0.0150, 0.0164, 0.0130)
