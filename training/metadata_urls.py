"""Token metadata URLs, at the site root: `/api/nft/<id>` is `ModelNFT.tokenURI(id)` (base URI + id)."""

from __future__ import annotations

from django.urls import path

from training import metadata_views

app_name = "metadata"

urlpatterns = [
    path("nft/contract.json", metadata_views.nft_contract, name="nft-contract"),
    path("nft/<int:token_id>", metadata_views.nft_metadata, name="nft"),
    path("nft/<int:token_id>/image.svg", metadata_views.nft_image, name="nft-image"),
    path("stake/<str:hex_id>.json", metadata_views.stake_metadata, name="stake"),
]
