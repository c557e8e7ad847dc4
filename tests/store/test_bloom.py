from reasonmed_async.store.bloom import KeyBloom


def test_added_keys_are_always_found_and_absent_ones_rarely():
    bloom = KeyBloom(bits_log2=16)
    added = [f"key-{i}" for i in range(2000)]
    for key in added:
        bloom.add(key)
    assert all(bloom.might_contain(k) for k in added)
    false_positives = sum(bloom.might_contain(f"other-{i}") for i in range(20000))
    assert false_positives < 20000 * 0.05  # ~1.4 % expected at this load


def test_an_empty_filter_contains_nothing():
    assert not KeyBloom(bits_log2=12).might_contain("anything")
