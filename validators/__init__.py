"""Data-contract, fidelity and privacy validation: metrics, Great Expectations suites
built from them, the publish/quarantine gate and the HTML report."""
