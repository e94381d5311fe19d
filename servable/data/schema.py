"""Feature schema of the CMS H->bb open-data layout: names, order, units and meanings.

Every feature keeps its name, unit and meaning here so that bundles can ship them (FAIR I1).
The order of each tuple is the order of the channels in the HDF5 arrays.
Lengths follow the CMS reconstruction convention (centimetres); momenta are in GeV.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

TRACK_SLOTS = 60
VERTEX_SLOTS = 5
PFCAND_SLOTS = 100


@dataclass(frozen=True)
class Feature:
    """One input feature: its name, unit ("" for dimensionless) and meaning."""

    name: str
    unit: str
    meaning: str
    categorical: bool = False
    default: float | None = None  # value written when the quantity does not exist for a jet


def _f(name: str, unit: str, meaning: str, **kw) -> Feature:
    return Feature(name, unit, meaning, **kw)


TRACK_FEATURES: tuple[Feature, ...] = (
    _f("track_ptrel", "", "track pT / jet pT"),
    _f("track_erel", "", "track energy / jet energy"),
    _f("track_phirel", "rad", "azimuthal distance to the jet axis"),
    _f("track_etarel", "", "pseudorapidity difference to the jet axis"),
    _f("track_deltaR", "", "angular distance to the jet axis"),
    _f("track_drminsv", "", "minimum angular distance to a secondary vertex flight direction",
       default=0.8),
    _f("track_drsubjet1", "", "angular distance to the leading subjet axis"),
    _f("track_drsubjet2", "", "angular distance to the subleading subjet axis"),
    _f("track_dz", "cm", "longitudinal impact parameter"),
    _f("track_dzsig", "", "longitudinal impact parameter significance"),
    _f("track_dxy", "cm", "transverse impact parameter (CMS sign convention)"),
    _f("track_dxysig", "", "transverse impact parameter significance"),
    _f("track_normchi2", "", "track-fit chi2 / degrees of freedom"),
    _f("track_quality", "", "track quality: -1 undefined, 0 loose, 1 tight, 2 highPurity",
       categorical=True),
    _f("track_dptdpt", "GeV^2", "track covariance: var(pT)"),
    _f("track_detadeta", "", "track covariance: var(eta)"),
    _f("track_dphidphi", "rad^2", "track covariance: var(phi)"),
    _f("track_dxydxy", "cm^2", "track covariance: var(dxy)"),
    _f("track_dzdz", "cm^2", "track covariance: var(dz)"),
    _f("track_dxydz", "cm^2", "track covariance: cov(dxy, dz)"),
    _f("track_dphidxy", "rad cm", "track covariance: cov(phi, dxy)"),
    _f("track_dlambdadz", "rad cm", "track covariance: cov(lambda, dz)"),
    _f("trackBTag_EtaRel", "", "pseudorapidity of the track relative to the jet axis"),
    _f("trackBTag_PtRatio", "", "track momentum perpendicular to the jet axis / |p|"),
    _f("trackBTag_PParRatio", "", "track momentum parallel to the jet axis / |p|"),
    _f("trackBTag_Sip2dVal", "cm", "2D impact parameter signed w.r.t. the nearer subjet axis"),
    _f("trackBTag_Sip2dSig", "", "signed 2D impact parameter significance"),
    _f("trackBTag_Sip3dVal", "cm", "3D impact parameter signed w.r.t. the nearer subjet axis"),
    _f("trackBTag_Sip3dSig", "", "signed 3D impact parameter significance"),
    _f("trackBTag_JetDistVal", "cm", "distance of closest approach to the jet axis (<= 0)"),
)

VERTEX_FEATURES: tuple[Feature, ...] = (
    _f("sv_ptrel", "", "secondary vertex pT / jet pT"),
    _f("sv_erel", "", "secondary vertex energy / jet energy"),
    _f("sv_phirel", "rad", "azimuthal distance of the vertex momentum to the jet axis"),
    _f("sv_etarel", "", "pseudorapidity difference of the vertex momentum to the jet axis"),
    _f("sv_deltaR", "", "angular distance of the vertex momentum to the jet axis"),
    _f("sv_pt", "GeV", "transverse momentum of the vertex (sum of its tracks)"),
    _f("sv_mass", "GeV", "invariant mass of the vertex tracks"),
    _f("sv_ntracks", "", "number of tracks fitted to the vertex"),
    _f("sv_normchi2", "", "vertex-fit chi2 / degrees of freedom"),
    _f("sv_dxy", "cm", "transverse flight distance from the primary vertex"),
    _f("sv_dxysig", "", "transverse flight distance significance"),
    _f("sv_d3d", "cm", "3D flight distance from the primary vertex"),
    _f("sv_d3dsig", "", "3D flight distance significance"),
    _f("sv_costhetasvpv", "", "cos of the angle between flight direction and vertex momentum"),
)

_NONE = -1.0  # written when the tau axis has no vertex / not enough tracks
JET_FEATURES: tuple[Feature, ...] = (
    _f("fj_jetNTracks", "", "number of tracks associated with the jet"),
    _f("fj_nSV", "", "number of secondary vertices associated with the jet"),
    *(_f(f"fj_tau{a}_trackEtaRel_{i}", "",
         f"{i + 1}-th smallest EtaRel of vertex tracks w.r.t. tau axis {a}", default=_NONE)
      for a in (0, 1) for i in (0, 1, 2)),
    _f("fj_tau_flightDistance2dSig_0", "", "2D flight significance of the SV on tau axis 0",
       default=_NONE),
    _f("fj_tau_flightDistance2dSig_1", "", "2D flight significance of the SV on tau axis 1",
       default=_NONE),
    _f("fj_tau_vertexDeltaR_0", "", "angular distance of the SV on tau axis 0 to that axis",
       default=_NONE),
    _f("fj_tau_vertexEnergyRatio_0", "", "SV energy / track energy on tau axis 0", default=_NONE),
    _f("fj_tau_vertexEnergyRatio_1", "", "SV energy / track energy on tau axis 1", default=_NONE),
    _f("fj_tau_vertexMass_0", "GeV", "SV mass on tau axis 0", default=_NONE),
    _f("fj_tau_vertexMass_1", "GeV", "SV mass on tau axis 1", default=_NONE),
    _f("fj_trackSip2dSigAboveBottom_0", "",
       "Sip2dSig of the track that lifts the track mass above 5.2 GeV", default=_NONE),
    _f("fj_trackSip2dSigAboveBottom_1", "", "Sip2dSig of the track after it", default=_NONE),
    _f("fj_trackSip2dSigAboveCharm_0", "",
       "Sip2dSig of the track that lifts the track mass above 1.5 GeV", default=_NONE),
    _f("fj_trackSipdSig_0", "", "largest Sip3dSig of the jet's tracks", default=_NONE),
    _f("fj_trackSipdSig_0_0", "", "largest Sip3dSig on tau axis 0", default=_NONE),
    _f("fj_trackSipdSig_0_1", "", "second largest Sip3dSig on tau axis 0", default=_NONE),
    _f("fj_trackSipdSig_1", "", "second largest Sip3dSig of the jet's tracks", default=_NONE),
    _f("fj_trackSipdSig_1_0", "", "largest Sip3dSig on tau axis 1", default=_NONE),
    _f("fj_trackSipdSig_1_1", "", "second largest Sip3dSig on tau axis 1", default=_NONE),
    _f("fj_trackSipdSig_2", "", "third largest Sip3dSig of the jet's tracks", default=_NONE),
    _f("fj_trackSipdSig_3", "", "fourth largest Sip3dSig of the jet's tracks", default=_NONE),
    _f("fj_z_ratio", "", "dR(SV_0, SV_1) * pT(softer SV) / m(SV_0 + SV_1)", default=_NONE),
)

PFCAND_FEATURES: tuple[Feature, ...] = (
    _f("pfcand_ptrel", "", "candidate pT / jet pT"),
    _f("pfcand_erel", "", "candidate energy / jet energy"),
    _f("pfcand_phirel", "rad", "azimuthal distance to the jet axis"),
    _f("pfcand_etarel", "", "pseudorapidity difference to the jet axis"),
    _f("pfcand_deltaR", "", "angular distance to the jet axis"),
    _f("pfcand_puppiw", "", "PUPPI pileup weight"),
    _f("pfcand_drminsv", "", "minimum angular distance to a secondary vertex"),
    _f("pfcand_drsubjet1", "", "angular distance to the leading subjet"),
    _f("pfcand_drsubjet2", "", "angular distance to the subleading subjet"),
    _f("pfcand_hcalFrac", "", "fraction of energy in the hadron calorimeter"),
)

SPECTATORS: tuple[Feature, ...] = (
    _f("fj_pt", "GeV", "jet transverse momentum"),
    _f("fj_eta", "", "jet pseudorapidity"),
    _f("fj_sdmass", "GeV", "soft-drop mass (beta=0, z_cut=0.1)"),
    _f("fj_n_sdsubjets", "", "number of soft-drop subjets (up to 2)"),
    _f("fj_doubleb", "", "CMS double-b tagger discriminant (-1: not simulated)", default=-1.0),
    _f("fj_tau21", "", "N-subjettiness ratio tau2/tau1"),
    _f("fj_tau32", "", "N-subjettiness ratio tau3/tau2"),
    _f("npv", "", "number of primary vertices"),
    _f("npfcands", "", "number of particle candidates in the jet"),
    _f("ntracks", "", "number of tracks stored for the jet"),
    _f("nsv", "", "number of secondary vertices stored for the jet"),
)

LABELS: tuple[str, ...] = ("QCD", "Hbb")


def names(features: tuple[Feature, ...]) -> tuple[str, ...]:
    return tuple(f.name for f in features)


TRACK_NAMES = names(TRACK_FEATURES)
VERTEX_NAMES = names(VERTEX_FEATURES)
JET_NAMES = names(JET_FEATURES)
PFCAND_NAMES = names(PFCAND_FEATURES)
SPECTATOR_NAMES = names(SPECTATORS)


def lookup(name: str) -> Feature:
    """The schema entry of a feature, by name, across every group."""
    for group in (TRACK_FEATURES, VERTEX_FEATURES, JET_FEATURES, PFCAND_FEATURES, SPECTATORS):
        for feature in group:
            if feature.name == name:
                return feature
    raise KeyError(f"unknown feature {name!r}: not in the CMS H->bb schema")


def schema_dict() -> dict:
    """The whole schema as plain data (what bundles ship as JSON)."""
    return {
        "layout": "CMS H->bb open data (DOI 10.7483/OPENDATA.CMS.JGJX.MS7Q), channels-first",
        "padding": "zero padding; filled slots first, sorted by decreasing pT",
        "slots": {"tracks": TRACK_SLOTS, "vertices": VERTEX_SLOTS, "pfcands": PFCAND_SLOTS},
        "tracks": [asdict(f) for f in TRACK_FEATURES],
        "vertices": [asdict(f) for f in VERTEX_FEATURES],
        "jet_features": [asdict(f) for f in JET_FEATURES],
        "pfcands": [asdict(f) for f in PFCAND_FEATURES],
        "spectators": [asdict(f) for f in SPECTATORS],
        "labels": list(LABELS),
    }


def schema_json(indent: int = 2) -> str:
    return json.dumps(schema_dict(), indent=indent)
