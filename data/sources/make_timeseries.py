"""Rebuild the bundled time-series sources from statsmodels' copies:
`python data/sources/make_timeseries.py`.

grunfeld.csv: the Grunfeld (1950) investment panel, long format (firm, year), with each
firm's industry added from public record as a static per-firm column.
fertility.csv: World Bank total fertility rate per country and year, 1960-2011, long
format; country-years without a value are dropped, so series have unequal lengths."""

from pathlib import Path

from statsmodels.datasets import fertility, grunfeld

HERE = Path(__file__).parent
INDUSTRY = {
    "General Motors": "automotive",
    "Chrysler": "automotive",
    "US Steel": "steel",
    "American Steel": "steel",
    "General Electric": "electrical",
    "Westinghouse": "electrical",
    "Atlantic Refining": "oil",
    "Union Oil": "oil",
    "IBM": "office machines",
    "Goodyear": "rubber",
    "Diamond Match": "matches",
}

if __name__ == "__main__":
    panel = grunfeld.load_pandas().data
    panel = panel.assign(year=panel["year"].astype(int), industry=panel["firm"].map(INDUSTRY))
    panel = panel[["firm", "year", "industry", "invest", "value", "capital"]].sort_values(["firm", "year"])
    panel.to_csv(HERE / "grunfeld.csv", index=False)

    wide = fertility.load_pandas().data
    years = [str(y) for y in range(1960, 2012)]  # 2012 and 2013 are empty in this copy
    rates = wide.melt(id_vars=["Country Name"], value_vars=years, var_name="year", value_name="fertility")
    rates = rates.rename(columns={"Country Name": "country"}).astype({"year": int}).dropna()
    rates.sort_values(["country", "year"]).to_csv(HERE / "fertility.csv", index=False)
