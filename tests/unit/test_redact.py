from executor.core.redact import MASK, LineRedactor, Redactor, secret_env


def test_known_secret_and_key_shapes_are_masked():
    r = Redactor(["my-very-secret-value"])
    # built at run time so no key-shaped literal sits in the repository
    openai_like, hf_like = "sk-" + "abcdefghij" * 3, "hf_" + "abcdefghij" * 3
    text = r.text(f"key=my-very-secret-value and {openai_like} {hf_like}")
    assert "my-very-secret-value" not in text and "sk-abc" not in text and "hf_abc" not in text
    assert text.count(MASK) == 3


def test_short_values_are_not_treated_as_secrets():
    assert Redactor(["abc"]).text("abc abc") == "abc abc"


def test_streaming_redaction_sees_a_secret_split_across_chunks():
    stream = LineRedactor(Redactor(["SECRETVALUE123"]))
    out = stream.feed("token: SECRET") + stream.feed("VALUE123\nnext") + stream.flush()
    assert "SECRETVALUE123" not in out
    assert out == f"token: {MASK}\nnext"


def test_progress_bars_without_newlines_are_flushed_without_splitting_keys():
    stream = LineRedactor(Redactor(["SECRETVALUE123"]))
    chunk = ("progress 10% SECRETVALUE123 \r" * 5000)
    out = stream.feed(chunk) + stream.flush()
    assert "SECRETVALUE123" not in out and len(out) > 0


def test_mapping_masks_secret_keys_and_values():
    r = Redactor(["hunter22-long"])
    masked = r.mapping({"api_key": "x", "OPENAI_API_KEY": "y", "nested": {"HF_TOKEN": "z"},
                        "note": "pw hunter22-long", "n": 3})
    assert masked == {"api_key": MASK, "OPENAI_API_KEY": MASK, "nested": {"HF_TOKEN": MASK},
                      "note": f"pw {MASK}", "n": 3}


def test_secret_env_picks_keys_and_tokens():
    env = {"OPENAI_API_KEY": "a", "HF_TOKEN": "b", "PATH": "/bin", "EMPTY_API_KEY": ""}
    assert secret_env(env) == {"OPENAI_API_KEY": "a", "HF_TOKEN": "b"}
