"""Meta's rate cards, as data: what each message category costs per market, by the month it took
effect. `coexist.costs` reads them; nothing here runs."""
