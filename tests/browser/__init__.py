"""Tests of the HTML pages in a real headless browser, and the cases they share with tests/."""
