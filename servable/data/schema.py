"""Feature schema of the CMS H->bb open-data layout: names, order, units and meanings.

Every feature keeps its name, unit and meaning here so that bundles can ship them (FAIR I1).
The order of each tuple is the order of the channels in the HDF5 arrays.
Lengths follow the CMS reconstruction convention (centimetres); momenta are in GeV. Each
feature carries its definition and the producer source line it follows (`PRODUCER`), and the
bounds the producer's clipping imposes (`lo`, `hi`), which `servable data inspect` checks.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

TRACK_SLOTS = 60
VERTEX_SLOTS = 5
PFCAND_SLOTS = 100


PRODUCER = ("cms-opendata-analyses/HiggsToBBNtupleProducerTool, branch opendata_80X, "
            "commit da077cb7cbaa007878d8054168f4b6be2102d904 (NtupleAK8/src/...), and CMSSW "
            "DataFormats/PatCandidates (MiniAOD packing) and RecoBTag BoostedDoubleSVProducer")


@dataclass(frozen=True)
class Feature:
    """One input feature: name, unit ("" for dimensionless), definition and where it comes from.

    `lo`/`hi` bound the values the producer can write (its clipping, or the physical range);
    `integer` marks integer-valued features, `values` a closed set of allowed values.
    """

    name: str
    unit: str
    meaning: str
    categorical: bool = False
    default: float | None = None  # value written when the quantity does not exist for a jet
    source: str = ""
    lo: float | None = None
    hi: float | None = None
    integer: bool = False
    values: tuple[float, ...] | None = None


def _f(name: str, unit: str, meaning: str, **kw) -> Feature:
    return Feature(name, unit, meaning, **kw)


_TF, _TIB, _SV = "TrackFiller.cc", "TrackInfoBuilder.cc", "SVFiller.cc"
TRACK_FEATURES: tuple[Feature, ...] = (
    _f("track_ptrel", "", "track pT / raw (uncorrected) jet pT", source=f"{_TF} l.155",
       lo=0, hi=1.5),
    _f("track_erel", "", "track energy (PF mass: pion, e or mu) / raw jet energy",
       source=f"{_TF} l.156", lo=0, hi=1.5),
    _f("track_phirel", "rad", "deltaPhi(track, jet) in (-pi, pi], no sign flip",
       source=f"{_TF} l.157", lo=-3.1416, hi=3.1416),
    _f("track_etarel", "", "etasign * (eta_track - eta_jet), etasign = -1 for jets with eta <= 0",
       source=f"{_TF} l.144,158", lo=-1.5, hi=1.5),
    _f("track_deltaR", "", "deltaR(track, raw jet axis)", source=f"{_TF} l.159", lo=0, hi=1.5),
    _f("track_drminsv", "", "min(0.8, deltaR to the nearest SV momentum) - 0.8; 0: no SV nearby",
       default=0.0, source=f"{_TF} l.117-122,164", lo=-0.8, hi=0),
    _f("track_drsubjet1", "", "deltaR to the leading soft-drop subjet; -1 without subjet",
       default=-1.0, source=f"{_TF} l.166-167", lo=-1, hi=3),
    _f("track_drsubjet2", "", "deltaR to the second soft-drop subjet; -1 without it",
       default=-1.0, source=f"{_TF} l.168", lo=-1, hi=3),
    _f("track_dz", "cm", "longitudinal IP w.r.t. PV[0], geometric sign (z_PCA - z_PV)",
       source=f"{_TF} l.182"),
    _f("track_dzsig", "", "dz / sqrt(cov(dsz, dsz)) (track error only), clipped to +-2000",
       source=f"{_TF} l.188", lo=-2000, hi=2000),
    _f("track_dxy", "cm", "transverse IP w.r.t. the associated PV, geometric sign "
       "(-x sin(phi) + y cos(phi))", source=f"{_TF} l.181"),
    _f("track_dxysig", "", "dxy / sqrt(cov(dxy, dxy)) (track error only), clipped to +-2000",
       source=f"{_TF} l.187", lo=-2000, hi=2000),
    _f("track_normchi2", "", "track-fit chi2/ndf, truncated to an integer (uint8 in MiniAOD), "
       "clipped to [-1, 300]", source=f"{_TF} l.189", lo=-1, hi=300, integer=True),
    _f("track_quality", "", "quality bit mask: 1 = loose, 5 = loose + highPurity (0 = padding)",
       categorical=True, source=f"{_TF} l.190", values=(1.0, 5.0)),
    _f("track_dptdpt", "GeV^-2", "cov(q/p, q/p): sigma^2(q/p), 8-bit log packed "
       "(pT^2 x value in exp(-15..0), rounded up), never 0", source=f"{_TF} l.192-195",
       lo=0, hi=1.0),
    _f("track_detadeta", "rad^2", "cov(lambda, lambda), lambda = pi/2 - theta; 8-bit log packed "
       "in exp(-20..-5), rounded up", source=f"{_TF} l.196", lo=2.0e-9, hi=6.2e-3),
    _f("track_dphidphi", "rad^2", "cov(phi, phi); 8-bit log packed (pT^2 x value in "
       "exp(-15..0)), rounded up", source=f"{_TF} l.197", lo=0, hi=1.0),
    _f("track_dxydxy", "cm^2", "cov(dxy, dxy), half float of value x 1e4",
       source=f"{_TF} l.198", lo=0, hi=1.0),
    _f("track_dzdz", "cm^2", "cov(dsz, dsz), dsz = dz cos(lambda); half float of value x 1e4",
       source=f"{_TF} l.199", lo=0, hi=1.0),
    _f("track_dxydz", "cm^2", "cov(dxy, dsz), half float of value x 1e4",
       source=f"{_TF} l.200", lo=-1.0, hi=1.0),
    _f("track_dphidxy", "rad cm", "cov(phi, dxy), signed 8-bit log packed in exp(-17..-4), "
       "never 0", source=f"{_TF} l.201", lo=-1.7e-2, hi=1.7e-2),
    _f("track_dlambdadz", "rad cm", "cov(lambda, dsz), signed 8-bit log packed in exp(-17..-4), "
       "never 0", source=f"{_TF} l.202", lo=-1.7e-2, hi=1.7e-2),
    _f("trackBTag_EtaRel", "", "rapidity of the track (pion mass) along the raw jet axis, "
       "clipped to [-5, 15]", source=f"{_TIB} l.58", lo=-5, hi=15),
    _f("trackBTag_PtRatio", "", "|p x jet axis| / |p| = sin(angle to the jet axis), "
       "clipped to [-1, 10]", source=f"{_TIB} l.62", lo=-1, hi=10),
    _f("trackBTag_PParRatio", "", "p . jet axis / |p| = cos(angle to the jet axis), "
       "clipped to [-10, 100]", source=f"{_TIB} l.63", lo=-10, hi=100),
    _f("trackBTag_Sip2dVal", "cm", "transverse IP w.r.t. PV[0], signed by (IP vector . jet "
       "direction), clipped to [-1, 70]", source=f"{_TIB} l.48,64", lo=-1, hi=70),
    _f("trackBTag_Sip2dSig", "", "Sip2dVal / (track (+) PV error), clipped to [-1, 4e4] "
       "(the unclipped value orders the tracks)", source=f"{_TIB} l.65", lo=-1, hi=4e4),
    _f("trackBTag_Sip3dVal", "cm", "3D IP w.r.t. PV[0], signed with the jet direction, "
       "clipped to [-1, 1e5]", source=f"{_TIB} l.49,67", lo=-1, hi=1e5),
    _f("trackBTag_Sip3dSig", "", "Sip3dVal / (track (+) PV error), clipped to [-1, 4e4]",
       source=f"{_TIB} l.68", lo=-1, hi=4e4),
    _f("trackBTag_JetDistVal", "cm", "-(distance between the track line and the jet axis "
       "through PV[0]), clipped to [-20, 1]; always <= 0", source=f"{_TIB} l.50,69",
       lo=-20, hi=0),
)

VERTEX_FEATURES: tuple[Feature, ...] = (
    _f("sv_ptrel", "", "SV pT / raw jet pT", source=f"{_SV} l.76", lo=0, hi=1.5),
    _f("sv_erel", "", "SV energy / raw jet energy", source=f"{_SV} l.77", lo=0, hi=1.5),
    _f("sv_phirel", "rad", "deltaPhi(SV momentum, jet), no sign flip", source=f"{_SV} l.78",
       lo=-3.1416, hi=3.1416),
    _f("sv_etarel", "", "etasign * (eta_SV - eta_jet), etasign = -1 for jets with eta <= 0",
       source=f"{_SV} l.72,79", lo=-1.5, hi=1.5),
    _f("sv_deltaR", "", "deltaR(SV momentum, jet) - 0.5, clipped to [-2, 0]",
       source=f"{_SV} l.80", lo=-2, hi=0),
    _f("sv_pt", "GeV", "pT of the summed SV track four-vectors (pion mass)",
       source=f"{_SV} l.81", lo=0),
    _f("sv_mass", "GeV", "invariant mass of the SV tracks (pion mass)", source=f"{_SV} l.82",
       lo=0),
    _f("sv_ntracks", "", "number of SV tracks", source=f"{_SV} l.85", lo=2, integer=True),
    _f("sv_normchi2", "", "vertex-fit chi2/ndf, clipped to [-1000, 1000]",
       source=f"{_SV} l.88", lo=-1000, hi=1000),
    _f("sv_dxy", "cm", "unsigned transverse distance SV - PV[0]", source=f"{_SV} l.90-91",
       lo=0),
    _f("sv_dxysig", "", "sv_dxy / (SV (+) PV error), clipped to [-1, 800]",
       source=f"{_SV} l.93", lo=-1, hi=800),
    _f("sv_d3d", "cm", "unsigned 3D distance SV - PV[0]", source=f"{_SV} l.95-96", lo=0),
    _f("sv_d3dsig", "", "sv_d3d / (SV (+) PV error), clipped to [-1, 800]",
       source=f"{_SV} l.98", lo=-1, hi=800),
    _f("sv_costhetasvpv", "", "cos(angle between SV momentum and the PV -> SV flight)",
       source=f"{_SV} l.99,120-124", lo=-1, hi=1),
)

_BDSV = "BoostedDoubleSVProducer"
JET_FEATURES: tuple[Feature, ...] = (
    _f("fj_jetNTracks", "", "number of IP-tag-info tracks passing the track selection",
       source=_BDSV, lo=0, integer=True),
    _f("fj_nSV", "", "number of SV-tag-info vertices with deltaR(flight, jet) < 0.7",
       source=_BDSV, lo=0, integer=True),
    *(_f(f"fj_tau{a}_trackEtaRel_{i}", "",
         f"{i + 1}-th smallest etaRel of SV tracks w.r.t. tau axis {a}; -1 if none",
         default=-1.0, source=_BDSV, lo=-1)
      for a in (0, 1) for i in (0, 1, 2)),
    _f("fj_tau_flightDistance2dSig_0", "", "2D flight significance of the first SV on tau axis "
       "0; -1 if none", default=-1.0, source=_BDSV, lo=-1),
    _f("fj_tau_flightDistance2dSig_1", "", "same on tau axis 1; -1 if none", default=-1.0,
       source=_BDSV, lo=-1),
    _f("fj_tau_vertexDeltaR_0", "", "deltaR(flight of the first SV on tau axis 0, that axis); "
       "-1 if none", default=-1.0, source=_BDSV, lo=-1),
    _f("fj_tau_vertexEnergyRatio_0", "", "SV energy on tau axis 0 / energy of PV tracks, at "
       "most 50; -1 if none", default=-1.0, source=_BDSV, lo=-1, hi=50),
    _f("fj_tau_vertexEnergyRatio_1", "", "same on tau axis 1", default=-1.0, source=_BDSV,
       lo=-1, hi=50),
    _f("fj_tau_vertexMass_0", "GeV", "mass of the SVs on tau axis 0; -1 if none", default=-1.0,
       source=_BDSV, lo=-1),
    _f("fj_tau_vertexMass_1", "GeV", "mass of the SVs on tau axis 1; -1 if none", default=-1.0,
       source=_BDSV, lo=-1),
    _f("fj_trackSip2dSigAboveBottom_0", "",
       "Sip2dSig of the track that lifts the running track mass above 5.2 GeV; -19 if none",
       default=-19.0, source=_BDSV),
    _f("fj_trackSip2dSigAboveBottom_1", "", "Sip2dSig of the track after it; -19 if none",
       default=-19.0, source=_BDSV),
    _f("fj_trackSip2dSigAboveCharm_0", "",
       "Sip2dSig of the track that lifts the running track mass above 1.5 GeV; -19 if none",
       default=-19.0, source=_BDSV),
    _f("fj_trackSipdSig_0", "", "largest Sip3dSig (at least -50); -50 if none", default=-50.0,
       source=_BDSV, lo=-50),
    _f("fj_trackSipdSig_0_0", "", "largest Sip3dSig on tau axis 0; -50 if none",
       default=-50.0, source=_BDSV, lo=-50),
    _f("fj_trackSipdSig_0_1", "", "second largest Sip3dSig on tau axis 0; -50 if none",
       default=-50.0, source=_BDSV, lo=-50),
    _f("fj_trackSipdSig_1", "", "second largest Sip3dSig; -50 if none", default=-50.0,
       source=_BDSV, lo=-50),
    _f("fj_trackSipdSig_1_0", "", "largest Sip3dSig on tau axis 1; -50 if none",
       default=-50.0, source=_BDSV, lo=-50),
    _f("fj_trackSipdSig_1_1", "", "second largest Sip3dSig on tau axis 1; -50 if none",
       default=-50.0, source=_BDSV, lo=-50),
    _f("fj_trackSipdSig_2", "", "third largest Sip3dSig; -50 if none", default=-50.0,
       source=_BDSV, lo=-50),
    _f("fj_trackSipdSig_3", "", "fourth largest Sip3dSig; -50 if none", default=-50.0,
       source=_BDSV, lo=-50),
    _f("fj_z_ratio", "", "dR(SV0, SV1) * pT(SV1) / m(SV0 + SV1) (one SV: dR(tau axes) * pT / m)"
       "; -3 without SV", default=-3.0, source=_BDSV, lo=-3),
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

_JI = "JetInfoFillerAK8.cc"
SPECTATORS: tuple[Feature, ...] = (
    _f("fj_pt", "GeV", "raw (uncorrected) jet pT", source=_JI, lo=200),
    _f("fj_eta", "", "jet pseudorapidity", source=_JI, lo=-2.4, hi=2.4),
    _f("fj_sdmass", "GeV", "soft-drop mass (beta=0, z_cut=0.1), uncorrected", source=_JI, lo=0),
    _f("fj_n_sdsubjets", "", "number of soft-drop subjets (up to 2)", source=_JI, lo=0, hi=2,
       integer=True),
    _f("fj_doubleb", "", "CMS double-b tagger discriminant (-1: not simulated)", default=-1.0,
       source=_JI, lo=-1, hi=1),
    _f("fj_tau21", "", "N-subjettiness tau2/tau1 (1.01 if tau1 = 0)", source=_JI, lo=0),
    _f("fj_tau32", "", "N-subjettiness tau3/tau2 (1.01 if tau2 = 0)", source=_JI, lo=0),
    _f("npv", "", "number of reconstructed primary vertices", source=_JI, lo=1, integer=True),
    _f("npfcands", "", "number of particle candidates in the jet", source=_JI, lo=1,
       integer=True),
    _f("ntracks", "", "number of tracks of the jet (pT >= 0.95 GeV), not capped at 60",
       source=_TF, lo=0, integer=True),
    _f("nsv", "", "number of secondary vertices of the jet, not capped at 5", source=_SV, lo=0,
       integer=True),
)

# JetClass (Qu, Li, Qian, arXiv:2202.03772; Zenodo 10.5281/zenodo.6619768): particle-level
# jets, lengths in millimetres (Delphes). Raw ROOT branches first, then the derived features of
# the public JetClass data configurations (servable.data.particles computes them).
_JC = "JetClass ROOT branch (jet-universe/jetclass_generation, Delphes CMS card)"
_JD = "JetClass data configuration (jet-universe/particle_transformer data/JetClass/*.yaml)"
_FLAG = dict(categorical=True, integer=True, values=(0.0, 1.0), source=_JC)
JETCLASS_PARTICLE_FEATURES: tuple[Feature, ...] = (
    _f("part_px", "GeV", "particle px", source=_JC),
    _f("part_py", "GeV", "particle py", source=_JC),
    _f("part_pz", "GeV", "particle pz", source=_JC),
    _f("part_energy", "GeV", "particle energy", source=_JC, lo=0),
    _f("part_deta", "", "etasign * (eta_particle - eta_jet), etasign = +1 for jets with eta > 0, "
       "-1 otherwise (makeNtuples.C)", source=_JC),
    _f("part_dphi", "rad", "deltaPhi(particle, jet) in (-pi, pi]", source=_JC),
    _f("part_d0val", "mm", "transverse impact parameter, Delphes sign (x py - y px) / pT at the "
       "point of closest approach (minus CMS's dxy); 0 for neutral particles", source=_JC),
    _f("part_d0err", "mm", "uncertainty of d0 (0 for neutral particles)", source=_JC, lo=0),
    _f("part_dzval", "mm", "longitudinal impact parameter (0 for neutral particles)", source=_JC),
    _f("part_dzerr", "mm", "uncertainty of dz (0 for neutral particles)", source=_JC, lo=0),
    _f("part_charge", "", "electric charge", categorical=True, integer=True,
       values=(-1.0, 0.0, 1.0), source=_JC),
    _f("part_isChargedHadron", "", "particle-ID flag: charged hadron", **_FLAG),
    _f("part_isNeutralHadron", "", "particle-ID flag: neutral hadron", **_FLAG),
    _f("part_isPhoton", "", "particle-ID flag: photon", **_FLAG),
    _f("part_isElectron", "", "particle-ID flag: electron", **_FLAG),
    _f("part_isMuon", "", "particle-ID flag: muon", **_FLAG),
)
JETCLASS_DERIVED_FEATURES: tuple[Feature, ...] = (
    _f("part_pt_log", "", "ln(pT / GeV) of the particle", source=_JD),
    _f("part_e_log", "", "ln(E / GeV) of the particle", source=_JD),
    _f("part_logptrel", "", "ln(pT / jet_pt)", source=_JD, hi=0.0),
    _f("part_logerel", "", "ln(E / jet_energy)", source=_JD, hi=0.0),
    _f("part_deltaR", "", "hypot(part_deta, part_dphi)", source=_JD, lo=0),
    _f("part_d0", "", "tanh(part_d0val / mm)", source=_JD, lo=-1, hi=1),
    _f("part_dz", "", "tanh(part_dzval / mm)", source=_JD, lo=-1, hi=1),
)
JETCLASS_JET_FEATURES: tuple[Feature, ...] = (
    _f("jet_pt", "GeV", "jet pT (anti-kT R=0.8)", source=_JC, lo=0),
    _f("jet_eta", "", "jet pseudorapidity", source=_JC),
    _f("jet_phi", "rad", "jet azimuth", source=_JC),
    _f("jet_energy", "GeV", "jet energy", source=_JC, lo=0),
    _f("jet_nparticles", "", "number of particles in the jet", source=_JC, lo=0, integer=True),
    _f("jet_sdmass", "GeV", "soft-drop mass (beta=0, z_cut=0.1)", source=_JC, lo=0),
    *(_f(f"jet_tau{k}", "", f"N-subjettiness tau_{k} (beta=1, R0=0.8)", source=_JC, lo=0)
      for k in range(1, 5)),
)
# jet-level observables computed from the particles (servable.data.jetobservables): the
# inputs of the BDT and of the MLP's jet part on JetClass data
_JO = "servable.data.jetobservables, from the jet's particles (at most 128, the slots read)"
RING_EDGES: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.4)  # dR ring edges; the last is open
_RINGS = [*(f"{a:g} <= dR < {b:g}" for a, b in zip(RING_EDGES, RING_EDGES[1:], strict=False)),
          f"dR >= {RING_EDGES[-1]:g}"]
JETCLASS_JET_OBSERVABLES: tuple[Feature, ...] = (
    *(_f(f"jet_tau{k + 1}{k}", "", f"N-subjettiness ratio tau_{k + 1}/tau_{k} of the file's "
         f"jet_tau branches; 1 when tau_{k} = 0 (at most {k} particle{'s' * (k > 1)}: a "
         "further axis explains nothing)", source="servable.data.jetobservables, from jet_tau*",
         lo=0) for k in (1, 2, 3)),
    _f("jet_mass", "GeV", "invariant mass of the summed particle four-vectors", source=_JO,
       lo=0),
    _f("jet_n_charged", "", "particles with non-zero charge", source=_JO, lo=0, integer=True),
    _f("jet_n_neutral_hadrons", "", "particles flagged isNeutralHadron", source=_JO, lo=0,
       integer=True),
    _f("jet_n_photons", "", "particles flagged isPhoton", source=_JO, lo=0, integer=True),
    _f("jet_n_leptons", "", "particles flagged isElectron or isMuon", source=_JO, lo=0,
       integer=True),
    *(_f(f"jet_ptfrac_ring{i + 1}", "", f"share of the particles' scalar pT sum at "
         f"{ring} from the jet axis (energy-flow ring)", source=_JO, lo=0, hi=1)
      for i, ring in enumerate(_RINGS)),
    _f("jet_girth", "", "pT-weighted mean dR of the particles from the jet axis (width)",
       source=_JO, lo=0),
    _f("jet_ptd", "", "sqrt(sum pT^2) / sum pT of the particles (pT dispersion)", source=_JO,
       lo=0, hi=1),
    _f("jet_lead_ptfrac", "", "pT of the leading particle / the particles' scalar pT sum",
       source=_JO, lo=0, hi=1),
    _f("jet_charged_ptfrac", "", "scalar pT sum of charged particles / that of all",
       source=_JO, lo=0, hi=1),
    _f("jet_lepton_ptfrac", "", "pT of the leading electron or muon / the particles' scalar "
       "pT sum; 0 without one", default=0.0, source=_JO, lo=0, hi=1),
    _f("jet_n_displaced", "", "charged particles with |d0val| / d0err > 3 (d0err > 0)",
       source=_JO, lo=0, integer=True),
    _f("jet_max_d0sig", "", "largest |d0val| / d0err of the charged particles (d0err > 0); "
       "0 without one", default=0.0, source=_JO, lo=0),
)
JETCLASS_CLASSES: tuple[str, ...] = ("QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq",
                                     "Tbqq", "Tbl")
JETCLASS_SLOTS = 128

# generator truth of JetClass-like files (servable.data.jetclass_generator): extra branches of
# the tree, read into `Jets.extras`; `default` is the value of padded particle slots
_GEN = "servable.data.jetclass_generator (Pythia 8 record)"
JETCLASS_DECAY_SLOTS = 4  # at most four decay products (H -> WW* -> 4q)
JETCLASS_TRUTH_PARTICLE: tuple[Feature, ...] = (
    _f("part_truth_pdgid", "", "PDG id of the generator particle behind the candidate (a "
       "calorimeter cell: its most energetic deposit)", default=0.0, integer=True,
       source=_GEN),
    _f("part_truth_origin", "", "how that particle was produced, index into TRUTH_ORIGINS: 0 "
       "primary (at the primary vertex), 1 b-hadron decay (b -> c cascades included), 2 "
       "c-hadron decay, 3 other secondary (another displaced decay)", default=-1.0,
       integer=True, values=(0.0, 1.0, 2.0, 3.0), source=_GEN),
    _f("part_truth_decay_product", "", "the decay product of the jet's resonance (index into "
       "aux_decay_*) the particle descends from; of several (a string spans both quarks of "
       "H -> bb), the nearest in dR; -1: none (QCD jets, initial-state radiation, underlying "
       "event, the other resonance of the event)", default=-1.0, integer=True, source=_GEN),
)
JETCLASS_TRUTH_JET: tuple[Feature, ...] = (
    _f("aux_genpart_pt", "GeV", "pT of the jet's resonance (H, Z, W, t; last copy before its "
       "decay); 0 for QCD", source=_GEN, lo=0),
    _f("aux_genpart_eta", "", "its pseudorapidity; 0 for QCD", source=_GEN),
    _f("aux_genpart_phi", "rad", "its azimuth; 0 for QCD", source=_GEN),
    _f("aux_genpart_mass", "GeV", "its mass (the resonance's line shape); 0 for QCD",
       source=_GEN, lo=0),
    _f("aux_genpart_pid", "", "its PDG id; 0 for QCD", integer=True, source=_GEN),
    _f("aux_n_decay_products", "", "number of decay products of the resonance the jet "
       "contains (all of them: the matching requires it); 0 for QCD", integer=True,
       source=_GEN, lo=0, hi=JETCLASS_DECAY_SLOTS),
    _f("aux_decay_pt", "GeV", f"pT of each decay product ({JETCLASS_DECAY_SLOTS} slots: quarks "
       "or gluons as the resonance (or its W) emitted them, then the charged lepton after QED "
       "radiation; the neutrino is not one); 0: empty slot", source=_GEN, lo=0),
    _f("aux_decay_eta", "", "their pseudorapidity; 0: empty slot", source=_GEN),
    _f("aux_decay_phi", "rad", "their azimuth; 0: empty slot", source=_GEN),
    _f("aux_decay_pdgid", "", "their PDG id; 0: empty slot", integer=True, source=_GEN),
)

# generator truth (datasets under generator_truth/ in generated files)
TRUTH_ORIGINS: tuple[str, ...] = ("primary", "b_hadron_decay", "c_hadron_decay",
                                  "other_secondary", "pileup")
TRUTH_PADDING = -1  # origin / index written in empty slots
B_HADRON_SLOTS = 4
# each generator_truth/ dataset and its shape after the jet axis
TRUTH_SHAPES: dict[str, tuple[int, ...]] = {
    "n_b_hadrons": (), "weight": (),
    "track_origin": (TRACK_SLOTS,), "track_b_hadron": (TRACK_SLOTS,),
    "sv_origin": (VERTEX_SLOTS,), "sv_b_hadron": (VERTEX_SLOTS,),
    "sv_hadron_pdgid": (VERTEX_SLOTS,),
    "b_hadron_pdgid": (B_HADRON_SLOTS,), "b_hadron_pt_eta_phi": (B_HADRON_SLOTS, 3),
}

LABELS: tuple[str, ...] = ("QCD", "Hbb")


def names(features: tuple[Feature, ...]) -> tuple[str, ...]:
    """The names of `features`, in order."""
    return tuple(f.name for f in features)


TRACK_NAMES = names(TRACK_FEATURES)
VERTEX_NAMES = names(VERTEX_FEATURES)
JET_NAMES = names(JET_FEATURES)
PFCAND_NAMES = names(PFCAND_FEATURES)
SPECTATOR_NAMES = names(SPECTATORS)


def lookup(name: str) -> Feature:
    """The schema entry of a feature, by name, across every group."""
    for group in (TRACK_FEATURES, VERTEX_FEATURES, JET_FEATURES, PFCAND_FEATURES, SPECTATORS,
                  JETCLASS_PARTICLE_FEATURES, JETCLASS_DERIVED_FEATURES, JETCLASS_JET_FEATURES,
                  JETCLASS_JET_OBSERVABLES, JETCLASS_TRUTH_PARTICLE, JETCLASS_TRUTH_JET):
        for feature in group:
            if feature.name == name:
                return feature
    raise KeyError(f"unknown feature {name!r}: not in the CMS H->bb or JetClass schema")


def schema_dict() -> dict:
    """The whole schema as plain data (what bundles ship as JSON)."""
    return {
        "layout": "CMS H->bb open data (DOI 10.7483/OPENDATA.CMS.JGJX.MS7Q), channels-first",
        "padding": "zero padding; tracks sorted by decreasing signed 2D IP significance, "
                   "vertices by decreasing transverse flight significance",
        "producer": PRODUCER,
        "truth_origins": list(TRUTH_ORIGINS),
        "slots": {"tracks": TRACK_SLOTS, "vertices": VERTEX_SLOTS, "pfcands": PFCAND_SLOTS},
        "tracks": [asdict(f) for f in TRACK_FEATURES],
        "vertices": [asdict(f) for f in VERTEX_FEATURES],
        "jet_features": [asdict(f) for f in JET_FEATURES],
        "pfcands": [asdict(f) for f in PFCAND_FEATURES],
        "spectators": [asdict(f) for f in SPECTATORS],
        "labels": list(LABELS),
        "jetclass": {
            "layout": "JetClass particles (arXiv:2202.03772, DOI 10.5281/zenodo.6619768), "
                      "channels-first in the tracks group, no secondary vertices",
            "slots": JETCLASS_SLOTS,
            "particles": [asdict(f) for f in JETCLASS_PARTICLE_FEATURES],
            "derived_particle_features": [asdict(f) for f in JETCLASS_DERIVED_FEATURES],
            "jet_features": [asdict(f) for f in JETCLASS_JET_FEATURES],
            "jet_observables": [asdict(f) for f in JETCLASS_JET_OBSERVABLES],
            "labels": list(JETCLASS_CLASSES),
        },
    }


def schema_json(indent: int = 2) -> str:
    """The whole schema (`schema_dict`) as JSON text."""
    return json.dumps(schema_dict(), indent=indent)
