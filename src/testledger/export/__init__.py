"""Writing a run back out as a report (JUnit XML, CTRF JSON) that other tools can read."""
