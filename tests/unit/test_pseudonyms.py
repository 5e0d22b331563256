from shared.pseudonyms import pseudonymise


def test_the_same_professional_gets_the_same_pseudonym() -> None:
    assert pseudonymise(b"k", "ZH-A", "E12345") == pseudonymise(b"k", "ZH-A", "E12345")


def test_a_pseudonym_is_128_bits_of_hex_and_hides_the_staff_id() -> None:
    pseudonym = pseudonymise(b"k", "ZH-A", "E12345")
    assert len(pseudonym) == 32
    int(pseudonym, 16)
    assert "12345" not in pseudonym


def test_staff_ids_are_only_unique_within_a_hospital() -> None:
    assert pseudonymise(b"k", "ZH-A", "E1") != pseudonymise(b"k", "ZH-B", "E1")


def test_without_the_key_the_pseudonym_cannot_be_recomputed() -> None:
    assert pseudonymise(b"key-1", "ZH-A", "E1") != pseudonymise(b"key-2", "ZH-A", "E1")


def test_hospital_and_staff_id_cannot_be_shifted_into_each_other() -> None:
    assert pseudonymise(b"k", "ZH-A1", "23") != pseudonymise(b"k", "ZH-A", "123")
