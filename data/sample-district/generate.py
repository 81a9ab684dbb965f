#!/usr/bin/env python3
"""Generates the SAMPLE DATA in this folder (run: python3 generate.py). Standard library only.

The geometry is made up for demos and tests; it is not an official grid or an official no-fly zone.
"""
import json
import math

M_PER_DEG_LAT = 110_757.0


def m_per_deg_lon(lat):
    return 111_320.0 * math.cos(math.radians(lat))


def offset(lat, lon, east_m, north_m):
    return lat + north_m / M_PER_DEG_LAT, lon + east_m / m_per_deg_lon(lat)


def rect(lon0, lat0, lon1, lat1):
    # Counter-clockwise exterior, [lon, lat] as RFC 7946 asks, 7 decimals (about 1 cm).
    ring = [(lon0, lat0), (lon1, lat0), (lon1, lat1), (lon0, lat1), (lon0, lat0)]
    return [[[round(x, 7), round(y, 7)] for x, y in ring]]


def feature(geometry, properties):
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def write(name, features, note):
    with open(name, "w") as f:
        json.dump({"type": "FeatureCollection", "name": note, "features": features}, f, indent=1)
        f.write("\n")


cells = []
# Cluster A, Xixiang: 6 x 4 blocks of 0.00245 deg lon x 0.0018 deg lat (about 252 x 199 m) from the demo box's
# south-west corner. The four south-west blocks tile the demo box (22.5400-22.5436 N, 113.8800-113.8849 E) split
# at 22.5418 N and 113.88245 E.
streets = ["Qianjin Rd", "Xixiang Ave", "Baoan Ave", "Hangcheng Ave"]
for j in range(4):
    for i in range(6):
        lon0, lat0 = 113.8800 + 0.00245 * i, 22.5400 + 0.0018 * j
        demo = i < 2 and j < 2
        cells.append(feature(
            {"type": "Polygon", "coordinates": rect(lon0, lat0, lon0 + 0.00245, lat0 + 0.0018)},
            {
                "grid_id": f"XX-{j + 1:02d}{i + 1:02d}",
                "name": f"Xixiang block {j + 1}-{i + 1}",
                "community": "Xixiang" if i < 3 else "Hezhou",
                "street": streets[j],
                "priority": 1 + (i * 7 + j * 3) % 3,
                "demo": demo,
            },
        ))
# Cluster B, Fuyong: 3 x 2 blocks of 0.0033 x 0.0030 deg (about 340 x 332 m) across the south-east end of the
# airport zone: the north-west block lies inside it, the middle ones straddle its edge.
for j in range(2):
    for i in range(3):
        lon0, lat0 = 113.8230 + 0.0033 * i, 22.6035 + 0.0030 * j
        cells.append(feature(
            {"type": "Polygon", "coordinates": rect(lon0, lat0, lon0 + 0.0033, lat0 + 0.0030)},
            {
                "grid_id": f"FY-{j + 1:02d}{i + 1:02d}",
                "name": f"Fuyong block {j + 1}-{i + 1}",
                "community": "Fuyong",
                "street": "Fuyong Rd",
                "priority": 2,
                "demo": False,
            },
        ))
write("cells.geojson", cells, "SAMPLE DATA: Bao'an (Shenzhen) patrol grid cells, made up for demos")

# The airport (ZGSZ, about 22.639 N, 113.811 E): an 8 x 3 km rectangle along the runways (about 154/334 deg).
lat_c, lon_c = 22.639, 113.811
bearing = math.radians(154.0)
along = (math.sin(bearing), math.cos(bearing))  # east, north
across = (math.cos(bearing), -math.sin(bearing))
ring = []
for sa, sc in [(-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)]:
    e = sa * 4000.0 * along[0] + sc * 1500.0 * across[0]
    n = sa * 4000.0 * along[1] + sc * 1500.0 * across[1]
    lat, lon = offset(lat_c, lon_c, e, n)
    ring.append([round(lon, 7), round(lat, 7)])
# Make the exterior counter-clockwise.
area = sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(ring, ring[1:]))
if area < 0:
    ring.reverse()
zones = [
    feature({"type": "Polygon", "coordinates": [ring]},
            {"id": "ZGSZ", "name": "Shenzhen Bao'an International Airport (sample zone)"}),
    feature({"type": "Point", "coordinates": [113.8898, 22.5436]},
            {"id": "HOSP-HELI", "name": "Hospital helipad (sample zone)", "radius_m": 80.0}),
]
write("no-fly.geojson", zones, "SAMPLE DATA: no-fly zones, made up for demos")

launch = [
    feature({"type": "Point", "coordinates": [113.8795, 22.5395]}, {"id": "L1", "name": "Xixiang park (demo)"}),
    feature({"type": "Point", "coordinates": [113.8935, 22.5390]}, {"id": "L2", "name": "Hezhou school yard"}),
    feature({"type": "Point", "coordinates": [113.8340, 22.6010]}, {"id": "L3", "name": "Fuyong plaza"}),
]
write("launch-points.geojson", launch, "SAMPLE DATA: launch points")
