"""The planner's weekly briefing: a server-drawn page over the served snapshot.

``inputs`` builds the extra snapshot files the page needs (at ``harmcast
snapshot`` time); ``view`` turns a loaded bundle into what the templates show;
``mapsvg`` draws the areas as SVG; ``pages`` renders the HTML, CSV and GeoJSON.
"""
