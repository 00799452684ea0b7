"""Layer specs and the services vocabulary."""

import pytest

from geoserver.core.errors import DataError
from geoserver.core.layers import LayerSpec, ServiceVocabulary, load_specs
from geoserver.core.service import DEFAULT_LAYERS_DIR


def test_bundled_specs_load_in_order():
    vocab, specs = load_specs(DEFAULT_LAYERS_DIR)
    assert list(specs) == ["stations", "driver_homes", "gig_markets", "canteens", "fitness_stations", "rest_rooms",
                           "districts"]
    st = specs["stations"]
    assert st.title_zh.startswith("工会驿站") and st.geometry_type == "Point"
    assert st.private_fields == ("contact_name", "contact_phone", "location_status", "location_source",
                                 "location_reason", "location_note")
    assert st.catchment_radius_m == 1000
    assert "contact_phone" not in [f.name for f in st.public_fields]
    assert "truck_parking" in vocab.ids
    assert "truck_parking" in specs["driver_homes"].services and "truck_parking" not in st.services


def test_layer_services_must_be_in_the_vocabulary(tmp_path):
    import shutil
    shutil.copy(DEFAULT_LAYERS_DIR / "services.toml", tmp_path / "services.toml")
    text = (DEFAULT_LAYERS_DIR / "stations.toml").read_text(encoding="utf-8")
    (tmp_path / "stations.toml").write_text(text.replace('services = ["water"', 'services = ["teleport", "water"'),
                                            encoding="utf-8")
    with pytest.raises(DataError, match="stations.toml: services \\['teleport'\\] are not in services.toml"):
        load_specs(tmp_path)


@pytest.mark.parametrize("term,expected", [("charging", "charging"), ("充电", "charging"), ("微波炉", "microwave"),
                                           ("Toilet", "toilet"), ("法律援助", "legal_aid"), ("nonsense", None)])
def test_vocabulary_resolves_ids_labels_and_aliases(term, expected):
    vocab = ServiceVocabulary.load(DEFAULT_LAYERS_DIR / "services.toml")
    assert vocab.resolve(term) == expected


def test_bad_spec_is_a_clear_error(tmp_path):
    bad = tmp_path / "stations.toml"
    bad.write_text('id = "stations"\ntitle_zh = "x"\n', encoding="utf-8")
    with pytest.raises(DataError, match="stations.toml: missing key"):
        LayerSpec.load(bad)
    bad.write_text("id = [", encoding="utf-8")
    with pytest.raises(DataError, match="stations.toml"):
        LayerSpec.load(bad)


def test_spec_id_must_match_file_name(tmp_path):
    text = (DEFAULT_LAYERS_DIR / "stations.toml").read_text(encoding="utf-8")
    (tmp_path / "other.toml").write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match="must match the file name"):
        LayerSpec.load(tmp_path / "other.toml")
