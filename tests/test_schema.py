import json

from servable.data import schema


def test_track_and_vertex_features_follow_the_cms_order():
    assert len(schema.TRACK_NAMES) == 30 and len(schema.VERTEX_NAMES) == 14
    assert schema.TRACK_NAMES[:2] == ("track_ptrel", "track_erel")
    assert schema.TRACK_NAMES[13] == "track_quality"
    assert schema.TRACK_NAMES[-1] == "trackBTag_JetDistVal"
    assert schema.VERTEX_NAMES[0] == "sv_ptrel" and schema.VERTEX_NAMES[-1] == "sv_costhetasvpv"


def test_jet_features_and_spectators_follow_the_published_lists():
    assert len(schema.JET_NAMES) == 27 and len(schema.SPECTATOR_NAMES) == 11
    assert schema.JET_NAMES[0] == "fj_jetNTracks" and schema.JET_NAMES[-1] == "fj_z_ratio"
    assert schema.SPECTATOR_NAMES[:3] == ("fj_pt", "fj_eta", "fj_sdmass")
    assert len(schema.PFCAND_NAMES) == 10


def test_every_feature_has_a_unit_field_and_a_meaning():
    for group in (schema.TRACK_FEATURES, schema.VERTEX_FEATURES, schema.JET_FEATURES,
                  schema.SPECTATORS):
        for f in group:
            assert f.meaning and isinstance(f.unit, str)
    assert schema.lookup("track_dxy").unit == "cm"
    assert schema.lookup("sv_mass").unit == "GeV"


def test_track_quality_is_the_only_categorical_track_feature():
    assert [f.name for f in schema.TRACK_FEATURES if f.categorical] == ["track_quality"]


def test_schema_exports_as_json_with_names_and_units():
    data = json.loads(schema.schema_json())
    assert [f["name"] for f in data["tracks"]] == list(schema.TRACK_NAMES)
    assert data["vertices"][6]["unit"] == "GeV"
    assert data["slots"] == {"tracks": 60, "vertices": 5, "pfcands": 100}


def test_every_track_and_vertex_feature_names_its_producer_source_and_range():
    for f in schema.TRACK_FEATURES + schema.VERTEX_FEATURES:
        assert f.source.split()[0] in ("TrackFiller.cc", "TrackInfoBuilder.cc", "SVFiller.cc")
        assert f.meaning
    assert schema.lookup("track_quality").values == (1.0, 5.0)
    assert schema.lookup("track_normchi2").integer
    assert (schema.lookup("track_drminsv").lo, schema.lookup("track_drminsv").hi) == (-0.8, 0)
    assert schema.lookup("track_dptdpt").unit == "GeV^-2"
    assert schema.lookup("fj_trackSipdSig_0").default == -50.0
    assert schema.lookup("fj_z_ratio").default == -3.0


def test_docs_list_every_feature_with_its_unit():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text()
    for group in (schema.TRACK_FEATURES, schema.VERTEX_FEATURES, schema.JET_FEATURES,
                  schema.SPECTATORS):
        for f in group:
            row = next((line for line in doc.splitlines() if f"| `{f.name}` |" in line), None)
            assert row is not None, f.name
            assert f"| {f.unit or '-'} |" in row, f.name
