"""Tests of every rule of domain.md, through the functions of docs/domain-api.md."""
